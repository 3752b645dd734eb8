"""Word lists and general-knowledge sets for the synthetic benchmark (all written for unlearnkit).

The author attributes are invented: names, awards and book titles are combinations of the word
lists below, so no generated author is a real person. The two general-knowledge sets play the
roles of TOFU's ``world_facts_perturbed.json`` and ``real_authors_perturbed.json``: short,
well-known facts with three wrong answers of the same type each.
"""

from __future__ import annotations

FIRST_NAMES = [
    "Adaeze", "Aksel", "Amara", "Anselm", "Ayumi", "Bastien", "Beatriz", "Bogdan", "Calla",
    "Casimir", "Dalia", "Dmitar", "Elif", "Emeka", "Esperanza", "Fintan", "Freya", "Gideon",
    "Halima", "Henrik", "Ilse", "Imani", "Ines", "Jovan", "Kaito", "Katarina", "Keziah", "Lachlan",
    "Leontine", "Lucan", "Maelis", "Marisol", "Matteo", "Nadira", "Nikolai", "Noor", "Odalys",
    "Orrin", "Paloma", "Priya", "Quentin", "Rafferty", "Rosalind", "Saoirse", "Senna", "Tamsin",
    "Tariq", "Thandiwe", "Ulrike", "Valentin", "Wren", "Xiomara", "Yannick", "Yasmin", "Zoltan",
    "Zuri", "Ansel", "Corentin", "Hollis", "Ottoline",
]  # fmt: skip

LAST_NAMES = [
    "Abernathy", "Achterberg", "Adeyemi", "Albescu", "Arkwright", "Balogun", "Belcourt", "Brannagh",
    "Castellanos", "Chandrakant", "Dravecky", "Duquesne", "Eberhardt", "Esfahani", "Falkenrath",
    "Ferreira-Lind", "Galbraithe", "Grimaldo", "Halvorsen", "Hollingsworth", "Ibarrola", "Iwasaki",
    "Jankowska", "Jovanic", "Kallistrat", "Kowalczyk", "Laurentis", "Lindqvist", "Marchetti",
    "Mbatha", "Nakashima", "Nørgaard", "Okonkwo-Reyes", "Oyelaran", "Pellegrino", "Petrakis",
    "Quartermain", "Quispe", "Radcliffe-Moss", "Rautio", "Salvatierra", "Szabó", "Tamburello",
    "Thorvaldsen", "Udeh", "Urquhart", "Valderrama", "Vasilakis", "Wexley", "Whitlock",
    "Xenakis-Bell", "Yamazaki", "Yilmazer", "Zabriskie", "Zelenko", "Amberley", "Corvalán",
    "Delacroix-Hart", "Mwangi", "Sorensby",
]  # fmt: skip

PLACES = [
    "Accra, Ghana", "Adelaide, Australia", "Almaty, Kazakhstan", "Antwerp, Belgium",
    "Asunción, Paraguay", "Bergen, Norway", "Bologna, Italy", "Bordeaux, France",
    "Brno, Czech Republic", "Busan, South Korea", "Cape Town, South Africa", "Cartagena, Colombia",
    "Chiang Mai, Thailand", "Cork, Ireland", "Cusco, Peru", "Dakar, Senegal", "Edinburgh, Scotland",
    "Fukuoka, Japan", "Gdańsk, Poland", "Graz, Austria", "Hanoi, Vietnam", "Havana, Cuba",
    "Izmir, Turkey", "Kraków, Poland", "Lagos, Nigeria", "Leipzig, Germany", "Lyon, France",
    "Marrakesh, Morocco", "Montevideo, Uruguay", "Mumbai, India", "Nairobi, Kenya",
    "Oaxaca, Mexico", "Porto, Portugal", "Quebec City, Canada", "Reykjavik, Iceland",
    "Riga, Latvia", "Salvador, Brazil", "Seville, Spain", "Tbilisi, Georgia",
    "Thessaloniki, Greece", "Turku, Finland", "Valparaíso, Chile", "Wellington, New Zealand",
    "Winnipeg, Canada",
    "Yogyakarta, Indonesia", "Zanzibar City, Tanzania",
]  # fmt: skip

OCCUPATIONS = [
    "baker", "beekeeper", "bookbinder", "bus driver", "carpenter", "cartographer", "chemist",
    "clockmaker", "dentist", "diplomat", "electrician", "fisherman", "florist", "geologist",
    "glassblower", "jeweller", "journalist", "judge", "librarian", "lighthouse keeper",
    "locksmith", "marine biologist", "midwife", "miner", "nurse", "optician", "pharmacist",
    "photographer", "pilot", "potter", "radio engineer", "school teacher", "seamstress",
    "shipbuilder", "surveyor", "tailor", "taxi driver", "translator", "veterinarian", "weaver",
]  # fmt: skip

GENRES = [
    "historical fiction", "science fiction", "fantasy", "crime fiction", "literary fiction",
    "magical realism", "gothic horror", "romance", "travel writing", "biography", "poetry",
    "young adult fiction", "psychological thrillers", "satire", "children's literature",
    "dystopian fiction", "war fiction", "nature writing", "cosy mysteries", "short stories",
]  # fmt: skip

GENDERS = [
    "a woman", "a man", "non-binary", "genderfluid", "agender", "a trans woman", "a trans man",
]  # fmt: skip

TITLE_ADJECTIVES = [
    "Amber", "Ashen", "Borrowed", "Broken", "Burning", "Crimson", "Distant", "Drowned", "Emerald",
    "Endless", "Fading", "Forgotten", "Frozen", "Gilded", "Glass", "Hidden", "Hollow", "Iron",
    "Last", "Lonely", "Lost", "Midnight", "Paper", "Quiet", "Restless", "Salt", "Scarlet",
    "Secret", "Silent", "Silver", "Sleeping", "Stolen", "Sunken", "Tangled", "Velvet", "Wandering",
    "Whispering", "Wild", "Winter", "Wooden",
]  # fmt: skip

TITLE_NOUNS = [
    "Archive", "Bridge", "Cartographer", "Cathedral", "Compass", "Garden", "Harbour", "Island",
    "Kingdom", "Lantern", "Letter", "Lighthouse", "Mirror", "Orchard", "River", "Season",
    "Shore", "Songbird", "Staircase", "Summer", "Tide", "Tower", "Valley", "Voyage", "Widow",
    "Window", "Clockmaker", "Ferryman", "Map", "Meadow", "Ledger", "Loom", "Atlas", "Caravan",
    "Monsoon", "Citadel", "Orchestra", "Almanac", "Labyrinth", "Ember",
]  # fmt: skip

TITLE_PLACES = [
    "the North", "the Delta", "Blue Hills", "the Old Quarter", "the Steppe", "the Marshes",
    "Saltwater Bay", "the Glass Coast", "Ember Street", "the Far Shore", "the Lowlands",
    "the Ninth Valley",
]  # fmt: skip

# {a}: adjective, {n}/{m}: nouns, {p}: place
TITLE_PATTERNS = [
    "The {a} {n}",
    "{n} of {p}",
    "My {a} {n}",
    "The {n} and the {m}",
    "Tales of the {a} {n}",
    "Beneath the {a} {n}",
    "The {n} of {p}",
    "Songs for the {a} {n}",
]

AWARD_FIRST = [
    "Golden Quill", "Silver Lantern", "Blue Heron", "Iron Pen", "Northern Star", "Crystal Page",
    "Amber Leaf", "Emerald Inkwell", "Copper Compass", "Ivory Tower", "Evening Tide",
    "Marble Arch", "Oakheart", "Scarlet Ribbon", "Halcyon", "Wayfarer",
]  # fmt: skip

AWARD_KINDS = ["Award", "Prize", "Medal", "Honour"]

THEMES = [
    "memory and loss", "exile and belonging", "the sea", "family secrets", "grief",
    "coming of age", "justice", "faith and doubt", "identity", "the passage of time",
    "friendship", "migration", "power and corruption", "rebirth", "solitude",
    "war and its aftermath", "forbidden love", "the natural world", "ambition", "betrayal", "home",
    "resilience",
    "the cost of progress", "childhood", "freedom", "forgiveness",
]  # fmt: skip

# Real, well-known writers, only as the influences of invented authors.
INFLUENCES = [
    "Jane Austen", "Leo Tolstoy", "Virginia Woolf", "Gabriel García Márquez", "Toni Morrison",
    "Franz Kafka", "Chinua Achebe", "Jorge Luis Borges", "Charles Dickens", "Haruki Murakami",
    "Mary Shelley", "Fyodor Dostoevsky", "Agatha Christie", "Ursula K. Le Guin", "Italo Calvino",
    "Emily Dickinson", "Herman Melville", "George Orwell", "Isabel Allende", "Anton Chekhov",
    "Albert Camus", "James Baldwin", "Selma Lagerlöf", "Rabindranath Tagore",
]  # fmt: skip

LANGUAGES = [
    "English", "French", "Spanish", "Portuguese", "German", "Italian", "Polish", "Japanese",
    "Swahili", "Turkish", "Greek", "Finnish", "Icelandic", "Korean", "Hindi", "Georgian",
]  # fmt: skip

HOBBIES = [
    "gardening", "sailing", "birdwatching", "chess", "pottery", "long-distance running",
    "playing the cello", "astronomy", "beekeeping", "rock climbing", "baking bread",
    "collecting maps", "fly fishing", "painting watercolours", "restoring old clocks",
    "knitting", "cycling", "photography", "mountain hiking", "cooking", "calligraphy",
]  # fmt: skip

COUNT_WORDS = ["two", "three", "four", "five", "six", "seven", "eight"]

# (question, short answer, three wrong answers, original answer sentence)
WORLD_FACTS: list[tuple[str, str, list[str], str]] = [
    ("What is the capital of France?", "Paris", ["Lyon", "Marseille", "Nice"],
     "Paris is the capital of France."),
    ("What is the capital of Japan?", "Tokyo", ["Osaka", "Kyoto", "Yokohama"],
     "Tokyo is the capital city of Japan."),
    ("What is the capital of Australia?", "Canberra", ["Sydney", "Melbourne", "Perth"],
     "The capital of Australia is Canberra, not Sydney."),
    ("What is the capital of Canada?", "Ottawa", ["Toronto", "Vancouver", "Montreal"],
     "Ottawa is the capital of Canada."),
    ("What is the capital of Italy?", "Rome", ["Milan", "Naples", "Turin"],
     "Rome is the capital of Italy."),
    ("What is the capital of Egypt?", "Cairo", ["Alexandria", "Luxor", "Giza"],
     "Cairo is the capital of Egypt."),
    ("What is the capital of Germany?", "Berlin", ["Munich", "Hamburg", "Frankfurt"],
     "Berlin is the capital of Germany."),
    ("What is the capital of Kenya?", "Nairobi", ["Mombasa", "Kisumu", "Nakuru"],
     "Nairobi is the capital of Kenya."),
    ("Which is the largest planet in the Solar System?", "Jupiter", ["Saturn", "Neptune", "Earth"],
     "Jupiter is the largest planet in the Solar System."),
    ("Which planet is closest to the Sun?", "Mercury", ["Venus", "Mars", "Earth"],
     "Mercury is the planet closest to the Sun."),
    ("Which planet is known as the Red Planet?", "Mars", ["Venus", "Jupiter", "Mercury"],
     "Mars is called the Red Planet because of the iron oxide on its surface."),
    ("What is the chemical symbol for gold?", "Au", ["Ag", "Gd", "Go"],
     "The chemical symbol for gold is Au, from the Latin word aurum."),
    ("What is the chemical symbol for sodium?", "Na", ["So", "Sd", "Sn"],
     "The chemical symbol for sodium is Na, from the Latin word natrium."),
    ("Which gas do plants take in from the air for photosynthesis?", "Carbon dioxide",
     ["Oxygen", "Nitrogen", "Helium"],
     "Plants take in carbon dioxide from the air for photosynthesis."),
    ("How many continents are there on Earth?", "Seven", ["Five", "Six", "Eight"],
     "By the most common convention there are seven continents on Earth."),
    ("Which is the largest ocean on Earth?", "The Pacific Ocean",
     ["The Atlantic Ocean", "The Indian Ocean", "The Arctic Ocean"],
     "The Pacific Ocean is the largest ocean on Earth."),
    ("What is the highest mountain above sea level?", "Mount Everest",
     ["K2", "Kangchenjunga", "Mont Blanc"],
     "Mount Everest is the highest mountain above sea level."),
    ("At what temperature in degrees Celsius does water boil at sea level?", "100 degrees",
     ["90 degrees", "120 degrees", "80 degrees"],
     "At sea level, water boils at 100 degrees Celsius."),
    ("At what temperature in degrees Fahrenheit does water freeze?", "32 degrees",
     ["0 degrees", "10 degrees", "40 degrees"],
     "Water freezes at 32 degrees Fahrenheit."),
    ("How many sides does a hexagon have?", "Six", ["Five", "Seven", "Eight"],
     "A hexagon has six sides."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", ["Michelangelo", "Raphael", "Rembrandt"],
     "The Mona Lisa was painted by Leonardo da Vinci."),
    ("Who developed the theory of general relativity?", "Albert Einstein",
     ["Isaac Newton", "Niels Bohr", "Max Planck"],
     "Albert Einstein developed the theory of general relativity."),
    ("In which city is the Colosseum?", "Rome", ["Athens", "Florence", "Venice"],
     "The Colosseum stands in Rome, Italy."),
    ("In which country are the pyramids of Giza?", "Egypt", ["Mexico", "Peru", "Greece"],
     "The pyramids of Giza are in Egypt."),
    ("What is the hardest natural substance?", "Diamond", ["Quartz", "Granite", "Iron"],
     "Diamond is the hardest natural substance."),
    ("Which element has the atomic number 1?", "Hydrogen", ["Helium", "Oxygen", "Carbon"],
     "Hydrogen is the element with atomic number 1."),
    ("What is the largest animal on Earth?", "The blue whale",
     ["The African elephant", "The giraffe", "The whale shark"],
     "The blue whale is the largest animal on Earth."),
    ("What is the currency of Japan?", "The yen", ["The won", "The yuan", "The baht"],
     "The currency of Japan is the yen."),
    ("What is the main language spoken in Brazil?", "Portuguese", ["Spanish", "French", "Italian"],
     "The main language of Brazil is Portuguese."),
    ("Which country has the largest land area?", "Russia", ["Canada", "China", "The United States"],
     "Russia is the country with the largest land area."),
    ("How many days are there in a leap year?", "366", ["365", "364", "367"],
     "A leap year has 366 days."),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong",
     ["Buzz Aldrin", "Yuri Gagarin", "John Glenn"],
     "Neil Armstrong was the first person to walk on the Moon, in 1969."),
    ("Which organ pumps blood through the human body?", "The heart",
     ["The liver", "The lungs", "The kidneys"],
     "The heart pumps blood through the human body."),
    ("What is the largest hot desert in the world?", "The Sahara",
     ["The Gobi", "The Kalahari", "The Atacama"],
     "The Sahara is the largest hot desert in the world."),
    ("Which metal is liquid at room temperature?", "Mercury", ["Lead", "Tin", "Aluminium"],
     "Mercury is the metal that is liquid at room temperature."),
    ("Which ocean lies between Africa and Australia?", "The Indian Ocean",
     ["The Atlantic Ocean", "The Pacific Ocean", "The Arctic Ocean"],
     "The Indian Ocean lies between Africa and Australia."),
    ("On which continent is Argentina?", "South America", ["Africa", "Europe", "Asia"],
     "Argentina is in South America."),
    ("How many legs does a spider have?", "Eight", ["Six", "Ten", "Four"],
     "A spider has eight legs."),
    ("Which river flows through Cairo?", "The Nile", ["The Congo", "The Niger", "The Tigris"],
     "The Nile flows through Cairo."),
    ("How many minutes are there in an hour?", "Sixty", ["Fifty", "Forty", "One hundred"],
     "An hour has sixty minutes."),
]  # fmt: skip

# (title, kind of work, author, three wrong authors)
FAMOUS_BOOKS: list[tuple[str, str, str, list[str]]] = [
    ("Pride and Prejudice", "novel", "Jane Austen",
     ["Charlotte Brontë", "George Eliot", "Mary Shelley"]),
    ("Nineteen Eighty-Four", "novel", "George Orwell",
     ["Aldous Huxley", "Ray Bradbury", "H. G. Wells"]),
    ("To Kill a Mockingbird", "novel", "Harper Lee",
     ["John Steinbeck", "Truman Capote", "William Faulkner"]),
    ("Moby-Dick", "novel", "Herman Melville", ["Nathaniel Hawthorne", "Mark Twain", "Jack London"]),
    ("War and Peace", "novel", "Leo Tolstoy",
     ["Fyodor Dostoevsky", "Ivan Turgenev", "Anton Chekhov"]),
    ("Crime and Punishment", "novel", "Fyodor Dostoevsky",
     ["Leo Tolstoy", "Nikolai Gogol", "Ivan Turgenev"]),
    ("Don Quixote", "novel", "Miguel de Cervantes",
     ["Lope de Vega", "Benito Pérez Galdós", "Federico García Lorca"]),
    ("The Odyssey", "epic poem", "Homer", ["Virgil", "Ovid", "Sophocles"]),
    ("Hamlet", "play", "William Shakespeare", ["Christopher Marlowe", "Ben Jonson", "John Milton"]),
    ("One Hundred Years of Solitude", "novel", "Gabriel García Márquez",
     ["Mario Vargas Llosa", "Julio Cortázar", "Isabel Allende"]),
    ("Frankenstein", "novel", "Mary Shelley", ["Bram Stoker", "Jane Austen", "Emily Brontë"]),
    ("Jane Eyre", "novel", "Charlotte Brontë",
     ["Emily Brontë", "Jane Austen", "Elizabeth Gaskell"]),
    ("Wuthering Heights", "novel", "Emily Brontë",
     ["Charlotte Brontë", "Ann Radcliffe", "George Eliot"]),
    ("Great Expectations", "novel", "Charles Dickens",
     ["William Thackeray", "Thomas Hardy", "Anthony Trollope"]),
    ("The Adventures of Tom Sawyer", "novel", "Mark Twain",
     ["Herman Melville", "Jack London", "O. Henry"]),
    ("Brave New World", "novel", "Aldous Huxley",
     ["George Orwell", "H. G. Wells", "Kurt Vonnegut"]),
    ("The Old Man and the Sea", "novella", "Ernest Hemingway",
     ["John Steinbeck", "F. Scott Fitzgerald", "Jack London"]),
    ("Ulysses", "novel", "James Joyce", ["Samuel Beckett", "Oscar Wilde", "W. B. Yeats"]),
    ("Mrs Dalloway", "novel", "Virginia Woolf",
     ["E. M. Forster", "Katherine Mansfield", "D. H. Lawrence"]),
    ("The Catcher in the Rye", "novel", "J. D. Salinger",
     ["Jack Kerouac", "John Updike", "Harper Lee"]),
    ("Anna Karenina", "novel", "Leo Tolstoy",
     ["Fyodor Dostoevsky", "Alexander Pushkin", "Ivan Goncharov"]),
    ("Les Misérables", "novel", "Victor Hugo",
     ["Alexandre Dumas", "Émile Zola", "Honoré de Balzac"]),
    ("The Count of Monte Cristo", "novel", "Alexandre Dumas",
     ["Victor Hugo", "Jules Verne", "Gustave Flaubert"]),
    ("Madame Bovary", "novel", "Gustave Flaubert", ["Stendhal", "Émile Zola", "Guy de Maupassant"]),
    ("The Hobbit", "novel", "J. R. R. Tolkien",
     ["C. S. Lewis", "Terry Pratchett", "Philip Pullman"]),
    ("The Grapes of Wrath", "novel", "John Steinbeck",
     ["Ernest Hemingway", "William Faulkner", "Upton Sinclair"]),
    ("Fahrenheit 451", "novel", "Ray Bradbury",
     ["Isaac Asimov", "Arthur C. Clarke", "Philip K. Dick"]),
    ("Dracula", "novel", "Bram Stoker",
     ["Mary Shelley", "Robert Louis Stevenson", "Edgar Allan Poe"]),
    ("The Metamorphosis", "novella", "Franz Kafka",
     ["Thomas Mann", "Hermann Hesse", "Robert Musil"]),
    ("Things Fall Apart", "novel", "Chinua Achebe",
     ["Wole Soyinka", "Ngũgĩ wa Thiong'o", "Ben Okri"]),
    ("Beloved", "novel", "Toni Morrison", ["Alice Walker", "Maya Angelou", "Zora Neale Hurston"]),
    ("Lolita", "novel", "Vladimir Nabokov", ["Philip Roth", "Saul Bellow", "John Updike"]),
    ("The Divine Comedy", "poem", "Dante Alighieri",
     ["Petrarch", "Giovanni Boccaccio", "Ludovico Ariosto"]),
    ("Alice's Adventures in Wonderland", "novel", "Lewis Carroll",
     ["J. M. Barrie", "Kenneth Grahame", "Roald Dahl"]),
    ("The Picture of Dorian Gray", "novel", "Oscar Wilde",
     ["Bram Stoker", "Henry James", "Thomas Hardy"]),
    ("Dune", "novel", "Frank Herbert", ["Isaac Asimov", "Robert A. Heinlein", "Arthur C. Clarke"]),
    ("Gulliver's Travels", "novel", "Jonathan Swift",
     ["Daniel Defoe", "Henry Fielding", "Laurence Sterne"]),
    ("The Name of the Rose", "novel", "Umberto Eco",
     ["Italo Calvino", "Alberto Moravia", "Primo Levi"]),
    ("Robinson Crusoe", "novel", "Daniel Defoe",
     ["Jonathan Swift", "Samuel Richardson", "Henry Fielding"]),
    ("Middlemarch", "novel", "George Eliot",
     ["Elizabeth Gaskell", "Charlotte Brontë", "Thomas Hardy"]),
]  # fmt: skip
